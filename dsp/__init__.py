"""The media tier: G.711, tone zones, DTMF, FSK, busy-cadence detection,
prompt playing and bridging, in C, each kernel a bank of channels, stepped one
1 ms tick at a time. Imports nothing of ours."""
