"""Evidence: export bundles for prosecutors, their offline report, and their verification."""
