"""Layer 2, hardware behind small interfaces: ``camera/`` (one module per kind), the door ``relay``, the door
``inputs`` (contact, exit button), gpiozero ``pins`` (``mock`` is gpiozero's own test backend) and systemd's
``sdnotify``. Each hardware library (picamera2, gpiozero) is imported only when a device is opened."""
