// Cluster module (placeholder for pipeline check)
