"""The applications: the ``siamtrack`` command line, the track/webcam demos and their window, the speed benchmark."""
