fn main() {
    println!("raft: not yet");
}
