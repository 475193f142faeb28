"""Study ``data-size``: all or a quarter of the training set, depth, activation, dropout."""

import pandas as pd
from sklearn.model_selection import train_test_split

from ..mlp import MLPClassifier
from .data import stratify
from .registry import register
from .steps import fit_all, report_classifiers, score_table


@register("data-size", "Training-set size, depth, activation and dropout",
          small=dict(optimizer="rmsprop", lr=1e-3, batch_size=64, max_epochs=30),
          full=dict(optimizer="rmsprop", lr=1e-3, batch_size=128, max_epochs=20))
def run(study, data, settings, report):
    """Keras's MNIST example network, 2 x 512 ReLU units with dropout 0.2 trained
    with RMSprop, on all of the training set and on 25% of it; then, on the same
    25%, one layer of 512 units with ReLU or sigmoid and dropout 0.2, and with
    sigmoid and dropout 0.5 or no dropout."""
    quarter = tuple(train_test_split(data.X_train, data.y_train, train_size=0.25,
                                     stratify=stratify(data.y_train),
                                     random_state=settings.random_state)[::2])
    # name -> (parameters, trained on the quarter)
    variants = {
        "2x512 relu, dropout 0.2, all data": ({"hidden_layers": (512, 512), "dropout": 0.2},
                                              False),
        "2x512 relu, dropout 0.2, 25%": ({"hidden_layers": (512, 512), "dropout": 0.2}, True),
        "512 relu, dropout 0.2, 25%": ({"hidden_layers": (512,), "dropout": 0.2}, True),
        "512 sigmoid, dropout 0.2, 25%": ({"hidden_layers": (512,), "dropout": 0.2,
                                           "activation": "sigmoid"}, True),
        "512 sigmoid, dropout 0.5, 25%": ({"hidden_layers": (512,), "dropout": 0.5,
                                           "activation": "sigmoid"}, True),
        "512 sigmoid, no dropout, 25%": ({"hidden_layers": (512,), "activation": "sigmoid"},
                                         True),
    }
    models = {name: MLPClassifier(**study.params(data, settings, **params))
              for name, (params, _) in variants.items()}
    on_quarter = {name: quarter for name, (_, quartered) in variants.items() if quartered}
    runs = fit_all(models, data, settings, "data-size", training_sets=on_quarter)
    table = score_table(runs, data)
    training_sizes = {name: len(on_quarter[name][0]) if name in on_quarter else len(data.X_train)
                      for name in models}
    table.insert(0, "n_train", pd.Series(training_sizes))
    report_classifiers(report, runs, data,
                       "Training and validation loss, and validation accuracy; the same "
                       "validation set for all.", table=table, normalize=settings.normalize)
