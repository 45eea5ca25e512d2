"""Human3.6M data layer: skeleton, cameras, raw and VideoPose3D readers, synthetic source."""
