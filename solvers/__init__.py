"""The FEM problems (electric, thermal) and their post-processing; never reads files."""
