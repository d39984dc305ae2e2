//! The JavaScript class of [`RoomObject`]: what `#[durable_object]` generates, except that
//! `webSocketMessage` is synchronous. The generated method is an `async fn`, so every message
//! paid for a promise, a task on wasm-bindgen's executor and a `queueMicrotask` to poll it, and
//! closures created and named for each; handling a message needs none of that (the room applies
//! it, sends and queues its write without awaiting anything), only setting the alarm does, and
//! that is rare. Profiles of the trace replay put that machinery at about a fifth of the worker's
//! time per message (docs/benchmarks.md).

use super::RoomObject;
use worker::wasm_bindgen::prelude::*;
use worker::worker_sys::web_sys;
use worker::{DurableObject, Env, WebSocketIncomingMessage};

impl worker::has_durable_object_attribute for RoomObject {}

/// A handler's result as the runtime expects it.
fn to_js(result: worker::Result<JsValue>) -> Result<JsValue, JsValue> {
    result.map_err(JsValue::from)
}

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
impl RoomObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> Self {
        <Self as DurableObject>::new(worker::durable::State::from(state), env)
    }

    #[wasm_bindgen(js_name = fetch)]
    pub async fn fetch(&self, req: web_sys::Request) -> Result<JsValue, JsValue> {
        to_js(
            <Self as DurableObject>::fetch(self, req.into())
                .await
                .map(|r| web_sys::Response::from(r).into()),
        )
    }

    #[wasm_bindgen(js_name = alarm)]
    pub async fn alarm(&self) -> Result<JsValue, JsValue> {
        to_js(
            <Self as DurableObject>::alarm(self)
                .await
                .map(|r| web_sys::Response::from(r).into()),
        )
    }

    /// Synchronous unless the message needs the alarm set: then a promise of that.
    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn websocket_message(
        &self,
        ws: web_sys::WebSocket,
        message: JsValue,
    ) -> Result<JsValue, JsValue> {
        let message = match message.as_string() {
            Some(text) => WebSocketIncomingMessage::String(text),
            None => {
                WebSocketIncomingMessage::Binary(worker::js_sys::Uint8Array::new(&message).to_vec())
            }
        };
        match self.on_message(ws.into(), message) {
            Ok(None) => Ok(JsValue::UNDEFINED),
            Ok(Some(wish)) => {
                // The promise owns what it needs (the storage handle, the alarm's planner), not
                // the object.
                let storage = self.state.storage();
                let upkeep = self.upkeep.clone();
                let set = async move {
                    to_js(
                        super::schedule_alarm(&storage, &upkeep, wish)
                            .await
                            .map(|_| JsValue::UNDEFINED),
                    )
                };
                Ok(worker::wasm_bindgen_futures::future_to_promise(set).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub async fn websocket_close(
        &self,
        ws: web_sys::WebSocket,
        code: usize,
        reason: String,
        was_clean: bool,
    ) -> Result<JsValue, JsValue> {
        to_js(
            <Self as DurableObject>::websocket_close(self, ws.into(), code, reason, was_clean)
                .await
                .map(|_| JsValue::NULL),
        )
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub async fn websocket_error(
        &self,
        ws: web_sys::WebSocket,
        error: JsValue,
    ) -> Result<JsValue, JsValue> {
        to_js(
            <Self as DurableObject>::websocket_error(self, ws.into(), error.into())
                .await
                .map(|_| JsValue::NULL),
        )
    }
}
