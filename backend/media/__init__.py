"""Media I/O shared by the demo, evaluation and CLI: H.264/AAC video, compositing, landmark drawings."""
