"""``rlhub tune``: hyperparameter search with Optuna, through the same training path as ``rlhub train``.

:mod:`.study` opens (or resumes) the study and runs it, :mod:`.objective` is one trial, and
:mod:`.report` writes what the study found. Search spaces come from plugins
(``rlhub_hyperparameter_samplers``); SB3's are the RL Zoo's.
"""
