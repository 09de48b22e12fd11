mod limits;
mod manager;
mod rate;
