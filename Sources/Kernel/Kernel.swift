// Kernel module (placeholder for pipeline check)
