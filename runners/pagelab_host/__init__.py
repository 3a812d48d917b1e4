"""Host side of pagelab: run directories, comparisons, reports and figures."""
MANIFEST_SCHEMA = "pagelab.manifest/1"
CONFORMANCE_SCHEMA = "pagelab.conformance/1"
