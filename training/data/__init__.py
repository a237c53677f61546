"""Motion-text and labelled-motion data as `datasets` objects.

`common` holds what every loader shares; each other module reads one dataset family
(`motion_folder`: HumanML3D / KIT-ML layout, `interhuman`, `classification`: CSV and BABEL,
`demo`: the procedural demo set); `catalog.load_named_dataset` picks one by name. Imports only
go from `catalog` to the loaders and from the loaders to `common`.
"""
