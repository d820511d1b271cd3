//! `graph-comms-emulator --listen 127.0.0.1:PORT`: runs the emulator until Ctrl-C.

fn main() {}
