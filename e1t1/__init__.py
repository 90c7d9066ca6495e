"""The line side above the framer: alarms, CAS, MFC/R2, ISDN PRI, analog
signalling and caller ID messages. Imports dsp and drivers only."""
