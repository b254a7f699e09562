"""Does pretraining help with 500 images? (CS 6476 part 8 on real data; ``cnnlab bench finetune``)

1. pretrain the packaged recipe ``fmnist_pretrain_0to4`` on Fashion-MNIST classes 0-4;
2. fine-tune on 500 images of classes 5-9 with the features frozen and a new head
   (the packaged recipe ``fmnist_finetune_5to9``);
3. fine-tune the same way with nothing frozen;
4. train the same net from scratch on the same 500 images, same recipe.
Steps 2-4 are compared on validation and test accuracy (test evaluated once per run, with the
best-on-val checkpoint). All four runs are ordinary run directories under ``output``.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.config import load_recipe
from cnnlab.config.recipes import RECIPES_DIR
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.run import Summary

PRETRAIN = "fmnist_pretrain_0to4.yaml"
FINETUNE = "fmnist_finetune_5to9.yaml"


def pretrain(output: str, seed: int, recipes: Path = RECIPES_DIR) -> Summary:
    """Step 1: the summary of the run pretrained on classes 0-4."""
    return fit(load_recipe(recipes / PRETRAIN, [f"output_dir={output}", f"seed={seed}"]), progress=Progress(quiet=True))


def compare_starts(pretrained_run: str, output: str, seed: int,
                   recipes: Path = RECIPES_DIR) -> list[tuple[str, Summary]]:
    """Steps 2-4 on classes 5-9: [(how the run started, its summary)], in the order above."""
    common = [f"output_dir={output}", f"seed={seed}"]
    starts = [
        ("fine-tuned, features frozen", [f"finetune.from={pretrained_run}"]),
        ("fine-tuned, all layers", [f"finetune.from={pretrained_run}", "finetune.freeze=[]",
                                    "name=fmnist_finetune_all_5to9"]),
        ("from scratch", ["finetune.from=null", "finetune.freeze=[]", "name=fmnist_scratch_5to9"]),
    ]
    return [(label, fit(load_recipe(recipes / FINETUNE, common + overrides), progress=Progress(quiet=True)))
            for label, overrides in starts]
