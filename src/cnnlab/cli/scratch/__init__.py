"""``cnnlab scratch gradcheck | bench | train``: the NumPy library of ENPM 703 assignment 2.

One module per subcommand, discovered as the top-level commands are.
"""

HELP = "the NumPy neural-net library: gradcheck, bench, train"
ORDER = 40
DESCRIPTION = ("The NumPy library of ENPM 703 (cs231n assignment 2): layers with their backward passes, naive "
               "and fast convolution and pooling, update rules, FullyConnectedNet, ThreeLayerConvNet, a Solver.")
