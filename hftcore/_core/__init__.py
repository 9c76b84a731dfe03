"""The bottom layer: byte loads, the status→exception path, files and progress bars.

Nothing here knows an exchange or a message format; every other layer may use it.
"""
