fn main() {
    println!("recdb");
}
