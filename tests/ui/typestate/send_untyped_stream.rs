// Outside `on_read` a stream's delimiter is not known statically: `send`
// does not compile there (`send_with` names the encoder).
use pants::{Handler, Stream};

struct Greeter;

impl Handler for Greeter {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let _ = stream.send(b"hello");
    }
}

fn main() {}
