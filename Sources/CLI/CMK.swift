import ArgumentParser
@main struct CMK: ParsableCommand {}
