"""Host side of pagelab: targets, run directories, comparisons, reports and figures."""
# The one version string: `pagelab --version`, and every manifest's host.pagelab_version.
__version__ = "0.9.0"
MANIFEST_SCHEMA = "pagelab.manifest/2"
# Versions the readers accept: older run directories stay readable.
MANIFEST_SCHEMAS = ("pagelab.manifest/1", MANIFEST_SCHEMA)
CONFORMANCE_SCHEMAS = ("pagelab.conformance/1", "pagelab.conformance/2")
