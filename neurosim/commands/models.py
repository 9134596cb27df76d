"""`neurosim models`: the model zoo, one row per registered model, parameters counted on the meta device."""
from __future__ import annotations

from neurosim.cli import command, emit


def zoo_table(family: str | None = None):
    """DataFrame: name, family, reference, params, description (each model built on ``meta``)."""
    import pandas as pd

    import models

    rows = []
    for name in models.names(family):
        e = models.entry(name)
        rows.append({"name": name, "family": e.family, "reference": e.reference or "",
                     "params": models.param_count(name), "description": e.description})
    return pd.DataFrame(rows, columns=["name", "family", "reference", "params", "description"])


@command("models", help="list the model zoo: name, family, published reference, parameter count")
def configure(p):
    p.add_argument("--family", default=None, help="only this family (cnn, mlp, transformer, vit, moe, ...)")
    p.add_argument("--json", action="store_true", help="a JSON list of rows")

    def run(args):
        import models
        from neurosim.errors import UnknownNameError

        families = {models.entry(n).family for n in models.names()}
        if args.family is not None and args.family not in families:
            raise UnknownNameError("model family", args.family, families)
        table = zoo_table(args.family)
        if not args.json:  # thousands separators for reading; JSON keeps integers
            table["params"] = table["params"].map("{:,}".format)
        emit(table, args.json)

    return run
