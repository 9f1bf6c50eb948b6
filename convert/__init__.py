"""facegate's workstation side: build, convert and evaluate the FaceNet model."""
