"""Media primitives: probing, ffmpeg, frame I/O, timecode, timelines, cadence, shot cuts."""
