"""Reports: figures and documents built from analysis results."""
