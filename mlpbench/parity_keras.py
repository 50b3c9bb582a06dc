"""The Keras half of `python -m mlpbench.parity`, run by a Python that has TensorFlow:

    python parity_keras.py CASES.json RESULTS.json

Imports neither torch nor mlpbench (TensorFlow lives in an environment of its own). For each
case and seed it builds the tutorial model as Keras does and trains it on the arrays mlpbench
exported (ARRAYS.npz: x_train, y_train, x_val, y_val), then writes the per-epoch history.
"""

import json
import sys
import time

import numpy as np


def build(case: dict, features: int, classes: int):
    import keras

    layers = [keras.Input((features,))]
    if case["input_bn"]:
        layers.append(keras.layers.BatchNormalization())
    activation = {"linear": None, "leaky_relu": None}.get(case["activation"], case["activation"])
    for _ in range(case["depth"]):
        layers.append(keras.layers.Dense(case["units"], activation=activation))
        if case["activation"] == "leaky_relu":
            layers.append(keras.layers.LeakyReLU(negative_slope=case["negative_slope"]))
    layers.append(keras.layers.Dense(classes))
    model = keras.Sequential(layers)
    optimizer = {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
                 "adagrad": keras.optimizers.Adagrad, "adam": keras.optimizers.Adam,
                 "nadam": keras.optimizers.Nadam}[case["optimizer"]](learning_rate=case["lr"])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train(case: dict, seed: int, arrays) -> dict:
    import keras

    keras.utils.set_random_seed(seed)
    x, y, xv, yv = arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"]
    model = build(case, x.shape[1], int(max(y.max(), yv.max())) + 1)
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    start = time.perf_counter()
    if case["keras_seeded_order"]:
        # As a user's seeded Keras script: fit with shuffle=True, which on TensorFlow replays one
        # permutation every epoch after set_random_seed.
        fit = model.fit(x, y, batch_size=case["batch_size"], epochs=case["epochs"], shuffle=True,
                        validation_data=(xv, yv), verbose=0).history
        history = {"train_loss": fit["loss"], "train_acc": fit["accuracy"], "val_loss": fit["val_loss"],
                   "val_acc": fit["val_accuracy"]}
    else:
        rng = np.random.default_rng(seed)
        for _ in range(case["epochs"]):  # a fresh permutation every epoch, fed in that order
            order = rng.permutation(len(y))
            fit = model.fit(x[order], y[order], batch_size=case["batch_size"], epochs=1, shuffle=False,
                            validation_data=(xv, yv), verbose=0).history
            history["train_loss"] += fit["loss"]
            history["train_acc"] += fit["accuracy"]
            history["val_loss"] += fit["val_loss"]
            history["val_acc"] += fit["val_accuracy"]
    history["seconds"] = time.perf_counter() - start
    return history


def main() -> None:
    cases_file, results_file = sys.argv[1:3]
    spec = json.loads(open(cases_file).read())
    results = {}
    for item in spec["runs"]:
        arrays = np.load(item["arrays"])
        results[item["key"]] = train(item["case"], item["seed"], arrays)
        print(f"keras: {item['key']} done", file=sys.stderr, flush=True)
    with open(results_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
