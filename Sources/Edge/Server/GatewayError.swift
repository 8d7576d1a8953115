/// A problem that stops the gateway from starting or reloading: a certificate that does not load, a port already in
/// use. The message says what and where.
public struct GatewayError: Error, CustomStringConvertible {
    /// What went wrong, for the log and the terminal.
    public var message: String

    /// Creates an error with a message.
    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}
