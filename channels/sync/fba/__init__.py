"""Amazon's fulfilment network: FBA stock read into the FBA location (`stock`), and orders of any channel
sent to Amazon as multi-channel fulfilment orders and followed until shipped (`outbound`)."""
