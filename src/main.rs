fn main() {
    println!("sgswitch");
}
