"""Delivery formats: ProRes masters, IMF packages, HLS/DASH, audio remastering and captions."""
