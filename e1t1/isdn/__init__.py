"""ISDN PRI: Q.921 LAPD (q921.py) and Q.931 messages (q931.py); call control follows."""
