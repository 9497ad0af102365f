"""HLS/DASH: CMAF segments, playlists and manifests for the streaming deliverable kinds."""
