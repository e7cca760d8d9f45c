"""SFU: Router/Transport/Producer/Consumer over aiortc; RTP passthrough; knows nothing of OpenVidu."""
