"""The terminal side of taskspace: progress bars every layer above the geometry draws.

The geometry reports progress only through a callback its caller passes
(`taskspace.geometry.callbacks`); this package holds the one bar that callback usually draws.
"""
