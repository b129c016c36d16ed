"""The shared machinery every method uses.

``net`` (the :class:`Net` record), ``layers`` (paper names, layer resolution),
``shapes`` (output sizes, the smallest input), ``hooks`` (capture a forward
pass, trace the module chain, leave the model as it was), ``images`` (load,
check and prepare images: one path), ``data`` (datasets and one
data-to-batches path), ``examples`` (the example images, one object
definition each), ``measures`` (measures shared by chapters), ``errors``,
``device``, ``online`` (download probes) and ``tables``.

Nothing here imports from ``vizlib.models``, ``vizlib.methods`` or
``vizlib.chapters``.
"""
