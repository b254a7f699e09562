"""``cnnlab data NAME``: look at a recipe's data, or write a dataset as image folders."""

HELP = "look at a recipe's data (stats, preview) or export a dataset as image folders"
ORDER = 16
DESCRIPTION = ("Look at the data before training: split sizes, class balance and the fitted normalization "
               "(stats), a grid of augmented training images (preview); or write a registered dataset as "
               "PNG class folders (export).")
