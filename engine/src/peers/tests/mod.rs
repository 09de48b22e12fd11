mod limits;
mod manager;
