"""The lab-machine process: arm / hand / camera interfaces and backends, tasks, the grasp executor,
DEFT fine-tuning and the ``deft-robot`` command line. Never imports ``ray`` or ``pipelines``."""
