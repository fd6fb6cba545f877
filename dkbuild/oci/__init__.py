"""OCI: reproducible layers, the local image layout store, image manifests, image backends."""
