"""Cameras behind one small interface: ``open()``, ``read(timeout) -> Frame``, ``close()``; one module each.

Every camera returns :class:`~edge.devices.camera.base.Frame` s whose ``image`` is ``(H, W, 3)`` uint8 **RGB**
(never OpenCV's BGR), rows top to bottom.

==============  ==========================================================================================
``base``        the :class:`Camera` protocol and :class:`Frame`
``picamera2``   a Raspberry Pi camera module (picamera2 is imported only when the camera opens)
``opencv``      anything ``cv2.VideoCapture`` opens (USB/V4L2, RTSP/HTTP, GStreamer, a video file); a reader
                thread keeps only the newest frame
``replay``      a folder of images or a video file, optionally paced like a live camera (tests, the demo)
``resilient``   :class:`ResilientCamera`, which keeps any of them going through faults, and
                :func:`open_camera`, which makes one from its config section
==============  ==========================================================================================

Importing this package imports none of them.
"""
