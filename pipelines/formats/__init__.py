"""Native file formats of the public datasets (message schemas, binary containers).

Modules here describe *formats*, not datasets: they are shared by the synthetic-data writers
(``pipelines.synth.writers``) and by the pipeline's dataset sources, so both sides speak the exact
wire format of the real releases.
"""
