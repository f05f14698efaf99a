// Topology module (placeholder for pipeline check)
