"""What the `sknets` command's help shows, from `sknets.studies.cli.cli_spec()`.

Written by `sknets.studies.cli.write_cli_spec()`; do not edit by hand.
"""

SPEC = {'studies': [('architectures', 'MLP architectures and regularization'),
             ('optimizers', 'Optimizers'),
             ('regularizers', 'Regularizers on a deep network'),
             ('search', 'Grid search over hidden layers'),
             ('autoencoder', 'Autoencoder code sizes'),
             ('training', 'Training improvements and over-fitting'),
             ('data-size', 'Training-set size, depth, activation and dropout')],
 'datasets': ['digits', 'mnist', 'fashion-mnist', 'kmnist', 'k49'],
 'train_flags': [{'name': 'hidden_layers',
                  'kind': 'widths',
                  'choices': None,
                  'help': 'Width of each hidden layer; `()` trains a network with no hidden '
                          'layer (a linear model). (default: (100,))'},
                 {'name': 'activation',
                  'kind': 'choice',
                  'choices': ['relu',
                              'sigmoid',
                              'tanh',
                              'leaky_relu',
                              'elu',
                              'gelu',
                              'identity'],
                  'help': 'Non-linearity after each hidden layer. (default: relu)'},
                 {'name': 'dropout',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Dropout rate after each hidden layer (training only). (default: '
                          '0.0)'},
                 {'name': 'batch_norm',
                  'kind': 'bool',
                  'choices': None,
                  'help': "Batch normalisation of each hidden layer's pre-activations (layer "
                          'order `Linear -> BatchNorm1d -> activation -> Dropout`). (default: '
                          'False)'},
                 {'name': 'l1',
                  'kind': 'float',
                  'choices': None,
                  'help': 'L1 penalty strength. (default: 0.0)'},
                 {'name': 'l2',
                  'kind': 'float',
                  'choices': None,
                  'help': 'L2 penalty strength, as above: its gradient is `l2 * W`, which is '
                          "torch's `weight_decay=l2` applied to the weight matrices only. "
                          '(default: 0.0)'},
                 {'name': 'optimizer',
                  'kind': 'choice',
                  'choices': ['sgd',
                              'momentum',
                              'nesterov',
                              'adagrad',
                              'rmsprop',
                              'adam',
                              'adamw'],
                  'help': '"sgd" is vanilla mini-batch gradient descent, "momentum" and '
                          '"nesterov" are `torch.optim.SGD` with `momentum` (Nesterov\'s '
                          'variant for the latter), the others are the torch optimizers of the '
                          'same name with torch\'s defaults ("adamw" also applies torch\'s '
                          'default decoupled weight decay, 0.01, to the weight matrices). '
                          '(default: adam)'},
                 {'name': 'lr',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Initial learning rate η0. (default: 0.001)'},
                 {'name': 'momentum',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Momentum of "momentum" and "nesterov"; ignored by other optimizers. '
                          '(default: 0.9)'},
                 {'name': 'batch_size',
                  'kind': 'int',
                  'choices': None,
                  'help': 'Mini-batch size (capped at the number of training samples). '
                          '(default: 200)'},
                 {'name': 'shuffle',
                  'kind': 'bool',
                  'choices': None,
                  'help': 'Reshuffle the training set every epoch; False keeps the data order '
                          '(reproducible batch composition, for comparisons). (default: True)'},
                 {'name': 'max_epochs',
                  'kind': 'int',
                  'choices': None,
                  'help': 'Number of passes over the training data (the most, when stopping '
                          'early). (default: 200)'},
                 {'name': 'lr_schedule',
                  'kind': 'choice',
                  'choices': ['constant',
                              'linear',
                              'exponential',
                              'step',
                              'cosine',
                              'plateau',
                              'one_cycle'],
                  'help': 'Learning rate η_t of epoch `t` (`t = 0` first, counted over all the '
                          "network's epochs, so that a continued fit resumes the schedule): "
                          '"constant" η0; "linear" `max(η0 - lr_decay * t, lr_min)`; '
                          '"exponential" `max(η0 * exp(-lr_decay * t), lr_min)`; "step" '
                          '`max(η0 * lr_gamma ** (t // lr_step_size), lr_min)`; "cosine" '
                          '`lr_min + (η0 - lr_min) * (1 + cos(pi * t / max_epochs)) / 2`; '
                          '"plateau" multiplies the rate by `lr_gamma` when the monitored '
                          'value (the `scoring` score, else the validation loss, else the '
                          'training loss) has not improved for `lr_patience` epochs, down to '
                          '`lr_min`; "one_cycle" sets the rate of every batch as torch\'s '
                          '`OneCycleLR` over `K = max_epochs * n_batches` steps: up from η0 / '
                          '25 to η0 along half a cosine over the first `0.3 * K - 1` steps, '
                          'then down to η0 / 25 / 1e4 at step `K - 1`; it schedules the rate '
                          "only (`momentum` and Adam's betas stay as set). (default: "
                          'constant)'},
                 {'name': 'lr_decay',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Slope `k` of "linear", rate `λ` of "exponential". (default: 0.0)'},
                 {'name': 'lr_min',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Floor of every decaying schedule. (default: 0.0)'},
                 {'name': 'lr_step_size',
                  'kind': 'int',
                  'choices': None,
                  'help': 'Epochs between the steps of "step". (default: 10)'},
                 {'name': 'lr_gamma',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Factor of "step" and "plateau". (default: 0.1)'},
                 {'name': 'lr_patience',
                  'kind': 'int',
                  'choices': None,
                  'help': 'Epochs without improvement before "plateau" lowers the rate. '
                          '(default: 5)'},
                 {'name': 'lr_warmup_epochs',
                  'kind': 'int',
                  'choices': None,
                  'help': 'Epochs over which the learning rate rises linearly, batch by batch, '
                          'to the rate the schedule gives: batch `k` of the `K = '
                          'lr_warmup_epochs * n_batches` warmup batches uses `(k + 1) / K` '
                          "times the schedule's rate (`lr / K` first), then the schedule runs "
                          'alone. (default: 0)'},
                 {'name': 'clip_grad_norm',
                  'kind': 'float_or_none',
                  'choices': None,
                  'help': 'Largest Euclidean norm of the gradient of all parameters together '
                          '(of the data loss plus the `l1` penalty, and `l2` with "adamw"): a '
                          'larger gradient is scaled down to this norm before each step '
                          '(`torch.nn.utils.clip_grad_norm_`). (default: none)'},
                 {'name': 'early_stopping',
                  'kind': 'bool',
                  'choices': None,
                  'help': 'Hold out `validation_fraction` of the training data (stratified for '
                          'classifiers) unless `validation_data` is given to `fit`, and stop '
                          'when the validation loss has not improved by more than `tol` for '
                          '`patience` epochs. (default: False)'},
                 {'name': 'patience',
                  'kind': 'int_or_none',
                  'choices': None,
                  'help': 'Epochs without improvement before stopping. (default: 10)'},
                 {'name': 'tol',
                  'kind': 'float',
                  'choices': None,
                  'help': 'Smallest improvement of the monitored value (a loss decrease; a '
                          'score increase with `scoring`) that counts. (default: 0.0001)'},
                 {'name': 'scoring',
                  'kind': 'float_or_none',
                  'choices': None,
                  'help': 'Validation score computed after every epoch on the validation set '
                          '(`early_stopping=True` or `validation_data`): a scikit-learn scorer '
                          'name (`"roc_auc"`, `"f1"`, `"neg_log_loss"`...) or a callable '
                          '`scorer(estimator, X, y)`. (default: none)'},
                 {'name': 'categorical_features',
                  'kind': 'choice',
                  'choices': ['from_dtype'],
                  'help': 'Which columns of `X` are categorical. (default: from_dtype)'},
                 {'name': 'one_hot_max_categories',
                  'kind': 'int',
                  'choices': None,
                  'help': 'A categorical column with at most this many categories is one-hot '
                          'encoded; a column with more is fed through a learned embedding of '
                          '`min(50, (n_categories + 1) // 2)` dimensions, trained with the '
                          'network. (default: 10)'},
                 {'name': 'standardize',
                  'kind': 'bool',
                  'choices': None,
                  'help': 'Standardise the numeric columns of a DataFrame (zero mean, unit '
                          'variance on the training data) inside the estimator. (default: '
                          'True)'},
                 {'name': 'missing_values',
                  'kind': 'choice',
                  'choices': ['impute', 'error'],
                  'help': '"impute": a missing value (NaN) in a numeric column is replaced by '
                          'the column\'s median in the training data and a 0/1 column "<name> '
                          'is missing" is added for each column that had missing values in '
                          '`fit`; in a categorical column it is a category of its own. '
                          '(default: impute)'},
                 {'name': 'label_smoothing',
                  'kind': 'float',
                  'choices': None,
                  'help': "Label smoothing of the cross-entropy (`torch.nn.CrossEntropyLoss`'s "
                          '`label_smoothing`): the target of each sample puts `1 - '
                          'label_smoothing` on its class and spreads `label_smoothing` evenly '
                          'over all classes. (default: 0.0)'},
                 {'name': 'class_weight',
                  'kind': 'choice',
                  'choices': ['balanced'],
                  'help': 'Weights of the classes in the loss, multiplied into '
                          '`sample_weight`; "balanced" uses `n_samples / (n_classes * '
                          'count(class))`. (default: none)'},
                 {'name': 'verbose',
                  'kind': 'int',
                  'choices': None,
                  'help': '0 is silent, 1 prints one line per epoch, 2 adds a progress bar '
                          'within each epoch. (default: 1)'}]}
