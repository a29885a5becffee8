"""Accelerator client: jobflows written with accli's WKubeTask, dispatched as a native DAG.

A wkube.py written for accli runs unchanged after `from acc_client import
WKubeTask`; unlike accli, one task may have several callbacks and a task
shared as callback of several tasks converges into one node.
"""

from acc_client.dag import tree_to_dag
from acc_client.task import WKubeTask

__version__ = "0.1.0"
__all__ = ["WKubeTask", "tree_to_dag", "__version__"]
