"""SFU: Router/Producer/Consumer over aiortc; RTP passthrough; knows nothing of OpenVidu."""
