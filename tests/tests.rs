//! docchat's end-to-end tests: one test binary (one link of llama.cpp and LanceDB).
//! They use the real default models (installed by scripts/setup.sh), a real LanceDB
//! in temporary folders, and real documents from ../shared/corpus.

mod answers;
mod browser;
mod chats;
mod cli;
mod common;
mod corpus;
mod crash;
mod e2e;
mod embedding;
mod extract;
mod faults;
mod folders;
mod layout;
mod load;
mod models;
mod ocr;
mod offline;
mod openai;
mod progress;
mod races;
mod reading;
mod retrieval;
mod security;
mod shared;
mod switch;
mod watch;
