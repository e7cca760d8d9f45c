"""OpenVidu recordings: the service (REST rules, status, events), files on disk, and the
COMPOSED recorder process. INDIVIDUAL media is recorded by the SFU itself
(:mod:`vidhub.sfu.recorder`)."""
