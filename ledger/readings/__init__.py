"""Meter readings: EIP-712 signing and recovery, the intake's checks, and the evidence store."""
