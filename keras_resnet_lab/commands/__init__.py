"""Sub-commands of ``keras-resnet-lab``, one module each (discovered by ``cli.py``)."""
