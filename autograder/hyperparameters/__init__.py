"""Chapter 5: hyperparameter search and babysitting the learning process (book/hyperparameters/)."""
